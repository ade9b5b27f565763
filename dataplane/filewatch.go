package dataplane

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// FileWatcher is file mode: it compiles the manifests in Dir with the same
// compiler the controller uses and applies the table, again whenever a
// file changes. A directory that stops compiling leaves the last good table
// in place.
type FileWatcher struct {
	Dir      string
	Apply    func(*routetable.Table) error
	Log      logr.Logger
	Interval time.Duration

	lastSum [32]byte
}

// Load compiles the directory once and applies the result.
func (f *FileWatcher) Load() error {
	sum, err := dirSum(f.Dir)
	if err != nil {
		return err
	}
	in, err := compiler.LoadManifests(f.Dir)
	if err != nil {
		return err
	}
	out := compiler.Compile(in)
	for _, v := range out.Verdicts {
		for _, c := range []compiler.Condition{v.Accepted, v.ResolvedRefs} {
			if c.Status != "True" {
				f.Log.Info("Manifest not served", "kind", v.Kind, "namespace", v.Namespace, "name", v.Name, "reason", c.Reason, "message", c.Message)
			}
		}
	}
	if out.Err != nil {
		return out.Err
	}
	if out.Table == nil {
		return errors.New("no routing table compiled")
	}
	if err := f.Apply(out.Table); err != nil {
		return err
	}
	f.lastSum = sum
	return nil
}

// Run polls Dir for changes until ctx is done. Polling (not inotify) also
// sees ConfigMap volume updates, which swap a symlink.
func (f *FileWatcher) Run(ctx context.Context) error {
	iv := f.Interval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sum, err := dirSum(f.Dir)
		if err != nil || sum == f.lastSum {
			continue
		}
		if err := f.Load(); err != nil {
			f.Log.Error(err, "Reloading manifests failed; keeping the last good routing table", "dir", f.Dir)
			f.lastSum = sum // do not retry until the files change again
		}
	}
}

// dirSum hashes the names and contents of the YAML/JSON files under dir.
func dirSum(dir string) ([32]byte, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir // as LoadManifests: ConfigMap volume internals ("..data") and dot-dirs
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("read config dir: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
