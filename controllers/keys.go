package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
)

// KeyPrefix starts every generated virtual key, so secret scanners and
// humans recognise one.
const KeyPrefix = "tg-"

// keyRandomBytes is the key's entropy: 256 bits.
const keyRandomBytes = 32

// keyPrefixShown is how much of a key status.keyPrefix reveals: "tg-" and
// four characters (24 of 256 bits), enough to tell keys apart.
const keyPrefixShown = len(KeyPrefix) + 4

// Labels on generated key Secrets.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedByValue = "tollgate-controller"
	// LabelVirtualKey names the VirtualKey a key Secret belongs to (when the
	// name fits in a label value).
	LabelVirtualKey = "gateway.tollgate.dev/virtualkey"
)

// randReader is the source of key material; tests may replace it.
var randReader io.Reader = rand.Reader

// newKey returns "tg-" followed by 256 random bits in unpadded base64url:
// 46 characters that survive URLs, headers and shells unquoted.
func newKey() (string, error) {
	b := make([]byte, keyRandomBytes)
	if _, err := io.ReadFull(randReader, b); err != nil {
		return "", fmt.Errorf("read random key material: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// keyState is what status reports about a VirtualKey's Secret.
type keyState struct {
	// secretName is set when the Secret exists and this VirtualKey
	// controls it.
	secretName string
	keyPrefix  string
}

// ensureKeySecrets makes sure every VirtualKey has its key Secret,
// generating a key where it is missing (first creation, or rotation after the
// Secret was deleted). It fills in.Secrets with the key Secrets each key
// controls and in.ForeignKeySecrets with key-named Secrets it does not. Errors
// are collected so one failing key does not hold back the others.
func (r *Reconciler) ensureKeySecrets(ctx context.Context, vks []v1alpha1.VirtualKey, in *compiler.Input) (map[types.NamespacedName]keyState, error) {
	log := ctrl.LoggerFrom(ctx)
	states := make(map[types.NamespacedName]keyState, len(vks))
	var errs []error
	for i := range vks {
		vk := &vks[i]
		name := compiler.KeySecretName(vk.Name)
		id := vk.Namespace + "/" + name
		var s corev1.Secret
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: vk.Namespace, Name: name}, &s)
		switch {
		case err == nil && s.DeletionTimestamp != nil:
			// Being deleted (rotation): wait for it to go, then generate.
			continue
		case err == nil && !metav1.IsControlledBy(&s, vk):
			in.ForeignKeySecrets[id] = true
			continue
		case err == nil:
		case apierrors.IsNotFound(err):
			created, cerr := r.createKeySecret(ctx, vk, name)
			if cerr != nil {
				errs = append(errs, cerr)
				continue
			}
			s = *created
			log.Info("Generated a new key", "VirtualKey", types.NamespacedName{Namespace: vk.Namespace, Name: vk.Name}, "secret", name)
		default:
			errs = append(errs, fmt.Errorf("read key Secret %s: %w", id, err))
			continue
		}
		in.Secrets[id] = s.Data
		st := keyState{secretName: name}
		if k := string(s.Data[compiler.KeySecretDataKey]); len(k) >= keyPrefixShown {
			st.keyPrefix = k[:keyPrefixShown]
		}
		states[types.NamespacedName{Namespace: vk.Namespace, Name: vk.Name}] = st
	}
	return states, errors.Join(errs...)
}

func (r *Reconciler) createKeySecret(ctx context.Context, vk *v1alpha1.VirtualKey, name string) (*corev1.Secret, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	immutable := true
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: vk.Namespace,
			Name:      name,
			Labels:    map[string]string{LabelManagedBy: managedByValue},
		},
		Type: corev1.SecretTypeOpaque,
		// Immutable: a key is never edited in place. Rotation deletes the
		// Secret and the controller issues a new one.
		Immutable: &immutable,
		Data:      map[string][]byte{compiler.KeySecretDataKey: []byte(key)},
	}
	if len(vk.Name) <= 63 {
		s.Labels[LabelVirtualKey] = vk.Name
	}
	if err := controllerutil.SetControllerReference(vk, s, r.Client.Scheme()); err != nil {
		return nil, fmt.Errorf("own key Secret %s/%s: %w", vk.Namespace, name, err)
	}
	if err := r.Client.Create(ctx, s); err != nil {
		// AlreadyExists: the cache had not seen the Secret yet; the watch
		// event brings it and the next reconcile uses it.
		return nil, fmt.Errorf("create key Secret %s/%s: %w", vk.Namespace, name, err)
	}
	return s, nil
}
