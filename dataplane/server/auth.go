package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// HashKey returns the lowercase hex SHA-256 of a virtual key, the only form
// in which keys are stored in the routing table.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// presentedKey extracts the key from "Authorization: Bearer <key>" or
// "x-api-key: <key>" (Anthropic clients).
func presentedKey(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("x-api-key"))
}

var errNoKey = openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_api_key", "",
	"You didn't provide an API key. Send your Tollgate virtual key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.")

var errBadKey = openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_api_key", "",
	"Incorrect API key provided. Use a virtual key issued by Tollgate (kubectl get secret <virtualkey>-key).")

// caller is the routing table in effect and the request's virtual key,
// or the error to answer: 503 before a table arrived, else Authenticate's.
func (s *Server) caller(r *http.Request, now time.Time) (*routetable.Table, *routetable.Key, *openai.APIError) {
	t := s.table.Load()
	if t == nil {
		return nil, nil, errNoTable
	}
	key, aerr := Authenticate(r, t, now)
	return t, key, aerr
}

// Authenticate resolves the virtual key of a request against table t. The
// key is hashed (never stored or logged) and the stored hash compared in
// constant time.
func Authenticate(r *http.Request, t *routetable.Table, now time.Time) (*routetable.Key, *openai.APIError) {
	secret := presentedKey(r)
	if secret == "" {
		return nil, errNoKey
	}
	sum := sha256.Sum256([]byte(secret))
	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	k, ok := t.KeyByHash(string(hexSum[:]))
	if !ok || subtle.ConstantTimeCompare([]byte(k.Hash), hexSum[:]) != 1 {
		return nil, errBadKey
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "expired_api_key", "",
			"The virtual key "+k.Namespace+"/"+k.Name+" expired at "+k.ExpiresAt.UTC().Format(time.RFC3339)+".")
	}
	return k, nil
}
