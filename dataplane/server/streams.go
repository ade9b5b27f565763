package server

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// streamLimiter bounds the open streams per virtual key
// (Key.MaxConcurrentStreams), so one runaway client cannot hold every
// connection of a replica. Counters live per key ID across table swaps.
type streamLimiter struct {
	open sync.Map // key ID -> *atomic.Int64
}

// acquire claims a stream slot for key; release must be called once when
// the stream ends. A key without a limit always gets a slot.
func (l *streamLimiter) acquire(key *routetable.Key) (release func(), aerr *openai.APIError) {
	if key.MaxConcurrentStreams <= 0 {
		return func() {}, nil
	}
	v, ok := l.open.Load(key.ID)
	if !ok {
		v, _ = l.open.LoadOrStore(key.ID, new(atomic.Int64))
	}
	n := v.(*atomic.Int64)
	if n.Add(1) > int64(key.MaxConcurrentStreams) {
		n.Add(-1)
		e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "too_many_streams", "",
			fmt.Sprintf("The virtual key %s/%s already has %d open streams, its limit; close one or raise rateLimit.maxConcurrentStreams.",
				key.Namespace, key.Name, key.MaxConcurrentStreams))
		e.RetryAfter = time.Second
		return nil, e
	}
	return func() { n.Add(-1) }, nil
}
