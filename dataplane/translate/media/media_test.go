package media

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestParseDataURL(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		wantErr  bool
		wantType string
		wantB64  string
	}{
		{"not a data URL", "https://example.com/a.png", false, false, "", ""},
		{"base64 png", "data:image/png;base64,iVBORw0KGgo=", true, false, "image/png", "iVBORw0KGgo="},
		{"parameters dropped", "data:image/jpeg;name=a.jpg;base64,/9j/", true, false, "image/jpeg", "/9j/"},
		{"plain text is re-encoded", "data:,hello%20world", true, false, "text/plain", base64.StdEncoding.EncodeToString([]byte("hello world"))},
		{"wrong media type is reported, not judged", "data:text/html;base64,PGI+", true, false, "text/html", "PGI+"},
		{"missing comma", "data:image/png;base64", true, true, "", ""},
		{"bad base64", "data:image/png;base64,%%%", true, true, "", ""},
		{"truncated base64", "data:image/png;base64,iVBORw0KGgo", true, true, "", ""},
		{"bad percent escape", "data:text/plain,%zz", true, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok, err := ParseDataURL(tt.in)
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("ok=%v err=%v, want ok=%v err=%v", ok, err, tt.ok, tt.wantErr)
			}
			if d.MediaType != tt.wantType || d.Base64 != tt.wantB64 {
				t.Errorf("got %+v", d)
			}
		})
	}
}

func TestParseDataURLTooLarge(t *testing.T) {
	big := "data:image/png;base64," + strings.Repeat("A", DefaultMaxBytes/3*4+8)
	if _, ok, err := ParseDataURL(big); !ok || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ok=%v err=%v, want ErrTooLarge", ok, err)
	}
}

func TestFetchDataURL(t *testing.T) {
	f := NewFetcher(time.Second, 8, false)
	mt, b, err := f.Fetch(context.Background(), "data:image/gif;base64,"+base64.StdEncoding.EncodeToString([]byte("GIF89a")))
	if err != nil || mt != "image/gif" || string(b) != "GIF89a" {
		t.Fatalf("got %q %q %v", mt, b, err)
	}
	if _, _, err := f.Fetch(context.Background(), "data:image/png;base64,"+base64.StdEncoding.EncodeToString(make([]byte, 9))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("9 bytes over an 8-byte limit: %v", err)
	}
	if _, _, err := f.Fetch(context.Background(), "data:image/png;base64,!!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

// imageServer serves png at /img, and other paths as scripted.
func imageServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/img", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	})
	mux.HandleFunc("/sniff", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(png)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html></html>"))
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(make([]byte, 64))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		for range 8 {
			_, _ = w.Write(make([]byte, 8))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png[:4])
		w.(http.Flusher).Flush()
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchHTTP(t *testing.T) {
	srv := imageServer(t)
	f := NewFetcher(2*time.Second, 32, true)
	tests := []struct {
		path     string
		wantType string
		wantErr  error
		anyErr   bool
	}{
		{"/img", "image/png", nil, false},
		{"/sniff", "image/png", nil, false},
		{"/html", "", ErrNotImage, true},
		{"/missing", "", nil, true},
		{"/big", "", ErrTooLarge, true},
		{"/big-chunked", "", ErrTooLarge, true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			mt, b, err := f.Fetch(context.Background(), srv.URL+tt.path)
			if (err != nil) != tt.anyErr || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (mt != tt.wantType || string(b) != string(png)) {
				t.Errorf("got %q %q", mt, b)
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	srv := imageServer(t)
	f := NewFetcher(200*time.Millisecond, 0, true)
	for _, p := range []string{"/slow", "/slow-body"} {
		start := time.Now()
		_, _, err := f.Fetch(context.Background(), srv.URL+p)
		if err == nil {
			t.Fatalf("%s: no error", p)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s: took %v with a 200ms timeout", p, el)
		}
	}
	// The caller's context bounds the fetch too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := NewFetcher(time.Minute, 0, true).Fetch(ctx, srv.URL+"/slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v", err)
	}
}

func TestFetchRefusesNonPublicByDefault(t *testing.T) {
	srv := imageServer(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	f := NewFetcher(time.Second, 0, false)
	urls := []string{
		srv.URL + "/img",                           // loopback
		"http://localhost:" + port + "/img",        // DNS name resolving to loopback
		"http://[::1]:" + port + "/img",            // IPv6 loopback
		"http://[::ffff:127.0.0.1]:" + port + "/",  // IPv4-mapped loopback
		"http://169.254.169.254/latest/meta-data/", // metadata (link-local)
		"http://[fd00:ec2::254]/latest/meta-data/", // IPv6 metadata
		"http://100.100.100.200/latest/meta-data/", // carrier-NAT range metadata
		"http://10.0.0.1/a.png",
		"http://192.168.1.1/a.png",
		"http://172.16.0.1/a.png",
		"http://0.0.0.0:" + port + "/img",
		"http://[::]:" + port + "/img",
		"http://[64:ff9b::7f00:1]:" + port + "/img", // NAT64 of 127.0.0.1
		"http://[fe80::1]/a.png",
	}
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			_, _, err := f.Fetch(context.Background(), u)
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("err = %v, want ErrForbiddenAddress", err)
			}
		})
	}
	if _, _, err := f.Fetch(context.Background(), "ftp://example.com/a.png"); err == nil || errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("ftp URL: %v", err)
	}
}

// TestFetchRefusesRedirectToPrivate treats one loopback server as "public"
// (the guard lets exactly its address through) and checks that its
// redirect to another loopback server is refused at dial time.
func TestFetchRefusesRedirectToPrivate(t *testing.T) {
	private := imageServer(t)
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, private.URL+"/img", http.StatusFound)
	}))
	defer public.Close()
	publicAddr := netip.MustParseAddrPort(strings.TrimPrefix(public.URL, "http://"))
	var dialed []netip.AddrPort
	f := newFetcher(time.Second, 0, func(ap netip.AddrPort) error {
		dialed = append(dialed, ap)
		if ap == publicAddr {
			return nil
		}
		return checkAddr(ap.Addr(), false)
	})
	_, _, err := f.Fetch(context.Background(), public.URL+"/go")
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if len(dialed) != 2 || dialed[0] != publicAddr {
		t.Errorf("dialed %v, want the public server then the redirect target", dialed)
	}

	// With private addresses allowed the same redirect is followed.
	mt, b, err := NewFetcher(time.Second, 0, true).Fetch(context.Background(), public.URL+"/go")
	if err != nil || mt != "image/png" || string(b) != string(png) {
		t.Fatalf("allowed redirect: %q %v", mt, err)
	}
}

func TestFetchRedirectLoop(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+r.URL.Path+"x", http.StatusFound)
	}))
	defer srv.Close()
	if _, _, err := NewFetcher(time.Second, 0, true).Fetch(context.Background(), srv.URL+"/"); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr                 string
		denied, deniedAlways bool
	}{
		{"8.8.8.8", false, false},
		{"2606:4700:4700::1111", false, false},
		{"127.0.0.1", true, false},
		{"127.255.0.9", true, false},
		{"::1", true, false},
		{"10.1.2.3", true, false},
		{"172.31.255.255", true, false},
		{"192.168.0.1", true, false},
		{"fc00::1", true, false},
		{"fe80::1%eth0", true, false},
		{"169.254.1.1", true, false},
		{"100.64.0.1", true, false},
		{"0.1.2.3", true, false},
		{"224.0.0.1", true, false},
		{"ff02::1", true, false},
		{"255.255.255.255", true, false},
		{"240.0.0.1", true, false},
		{"198.18.0.1", true, false},
		{"192.0.2.1", true, false},
		{"::ffff:10.0.0.1", true, false},
		{"2002:a00:1::", true, false},      // 6to4 of 10.0.0.1
		{"2002:808:808::", false, false},   // 6to4 of 8.8.8.8
		{"64:ff9b::a9fe:a9fe", true, true}, // NAT64 of 169.254.169.254
		{"169.254.169.254", true, true},
		{"::ffff:169.254.169.254", true, true},
		{"169.254.170.2", true, true},
		{"fd00:ec2::254", true, true},
		{"100.100.100.200", true, true},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := checkAddr(a, false) != nil; got != tt.denied {
			t.Errorf("checkAddr(%s, false) denied=%v, want %v", tt.addr, got, tt.denied)
		}
		if got := checkAddr(a, true) != nil; got != tt.deniedAlways {
			t.Errorf("checkAddr(%s, true) denied=%v, want %v", tt.addr, got, tt.deniedAlways)
		}
	}
}
