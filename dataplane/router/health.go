package router

import (
	"math"
	"sync"
	"time"
)

// TargetKey identifies one upstream target across routes: a provider and a
// model. Health is shared by every route that uses the same target.
type TargetKey struct {
	Provider string // routetable.Provider.ID
	Model    string
}

// HealthConfig tunes outlier detection. The zero value is not useful; use
// DefaultHealthConfig.
type HealthConfig struct {
	// Alpha is the EWMA smoothing factor for latency and error rate.
	Alpha float64
	// EjectAfter consecutive failures eject a target.
	EjectAfter int
	// BaseEjection is the first cool-down; it doubles per repeated ejection.
	BaseEjection time.Duration
	// MaxEjection caps the cool-down.
	MaxEjection time.Duration
}

// DefaultHealthConfig is used by the data plane.
var DefaultHealthConfig = HealthConfig{Alpha: 0.2, EjectAfter: 5, BaseEjection: 10 * time.Second, MaxEjection: 5 * time.Minute}

// Health tracks live per-target health from passive observation.
type Health struct {
	cfg HealthConfig
	now func() time.Time

	mu      sync.RWMutex
	targets map[TargetKey]*targetState
}

type targetState struct {
	mu           sync.Mutex
	latencyMS    float64 // EWMA of time to first byte; 0 = unknown
	errRate      float64 // EWMA of failures (0..1)
	consecFail   int
	ejections    int
	ejectedUntil time.Time
	probing      bool // a half-open probe is in flight
	inflight     int64
	attempts     uint64
	failures     uint64
}

// NewHealth returns a tracker; now may be nil (time.Now).
func NewHealth(cfg HealthConfig, now func() time.Time) *Health {
	if now == nil {
		now = time.Now
	}
	return &Health{cfg: cfg, now: now, targets: map[TargetKey]*targetState{}}
}

func (h *Health) state(k TargetKey) *targetState {
	h.mu.RLock()
	s := h.targets[k]
	h.mu.RUnlock()
	if s != nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s = h.targets[k]; s == nil {
		s = &targetState{}
		h.targets[k] = s
	}
	return s
}

// Start marks an attempt on k as in flight. Call the returned func with the
// outcome exactly once.
func (h *Health) Start(k TargetKey) (done func(ok bool, firstByte time.Duration)) {
	s := h.state(k)
	s.mu.Lock()
	s.inflight++
	s.attempts++
	s.mu.Unlock()
	return func(ok bool, firstByte time.Duration) { h.finish(s, ok, firstByte) }
}

func (h *Health) finish(s *targetState, ok bool, firstByte time.Duration) {
	a := h.cfg.Alpha
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	s.probing = false
	if ok {
		ms := float64(firstByte) / float64(time.Millisecond)
		if s.latencyMS == 0 {
			s.latencyMS = ms
		} else {
			s.latencyMS = a*ms + (1-a)*s.latencyMS
		}
		s.errRate = (1 - a) * s.errRate
		s.consecFail = 0
		s.ejections = 0
		s.ejectedUntil = time.Time{}
		return
	}
	s.failures++
	s.errRate = a + (1-a)*s.errRate
	s.consecFail++
	now := h.now()
	if s.consecFail >= h.cfg.EjectAfter || (!s.ejectedUntil.IsZero() && !now.Before(s.ejectedUntil)) {
		// Eject, or re-eject after a failed half-open probe.
		h.ejectLocked(s, now)
	}
}

// ejectLocked starts a cool-down that doubles with each ejection in a row.
func (h *Health) ejectLocked(s *targetState, now time.Time) {
	s.ejections++
	d := h.cfg.BaseEjection << min(s.ejections-1, 16)
	if d > h.cfg.MaxEjection || d <= 0 {
		d = h.cfg.MaxEjection
	}
	s.ejectedUntil = now.Add(d)
	s.consecFail = 0
}

// Eject takes k out of service now: an active health check found its
// provider dead, so no user request should find out the hard way. A target
// already in cool-down stays there; one whose cool-down has run out is
// ejected again for longer, instead of letting a half-open request through.
// Latency and error rate are not touched: a probe is not user traffic.
func (h *Health) Eject(k TargetKey) {
	s := h.state(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := h.now()
	if s.ejectedUntil.IsZero() || !now.Before(s.ejectedUntil) {
		h.ejectLocked(s, now)
	}
}

// Restore returns k to service: an active health check found its provider
// answering again.
func (h *Health) Restore(k TargetKey) {
	s := h.state(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consecFail, s.ejections, s.ejectedUntil, s.probing = 0, 0, time.Time{}, false
}

// available reports whether k may receive traffic now. After the cool-down
// one half-open probe is let through; it claims the probe slot.
func (h *Health) available(k TargetKey, claim bool) bool {
	s := h.state(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ejectedUntil.IsZero() {
		return true
	}
	if h.now().Before(s.ejectedUntil) || s.probing {
		return false
	}
	if claim {
		s.probing = true
	}
	return true
}

// score returns a multiplier (0..1] for a target's weight from its live
// health: lower for slow or failing targets.
func (h *Health) score(k TargetKey, b balancingKind, fastest float64) float64 {
	s := h.state(k)
	s.mu.Lock()
	lat, errRate, inflight := s.latencyMS, s.errRate, s.inflight
	s.mu.Unlock()
	ok := 1 - errRate
	m := ok * ok * ok
	switch b {
	case kindLeastLatency:
		if lat > 0 && fastest > 0 {
			r := fastest / lat
			m *= r * r
		}
	case kindLeastBusy:
		m /= float64(1 + inflight)
	}
	return math.Max(m, 1e-4)
}

func (h *Health) latency(k TargetKey) float64 {
	s := h.state(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latencyMS
}

// TargetStatus is a snapshot of one target's health, for status and metrics.
type TargetStatus struct {
	Key       TargetKey
	Ejected   bool
	ErrorRate float64
	LatencyMS float64
	InFlight  int64
	Attempts  uint64
	Failures  uint64
}

// Snapshot returns the health of every target seen so far.
func (h *Health) Snapshot() []TargetStatus {
	h.mu.RLock()
	defer h.mu.RUnlock()
	now := h.now()
	out := make([]TargetStatus, 0, len(h.targets))
	for k, s := range h.targets {
		s.mu.Lock()
		out = append(out, TargetStatus{
			Key: k, Ejected: !s.ejectedUntil.IsZero() && now.Before(s.ejectedUntil),
			ErrorRate: s.errRate, LatencyMS: s.latencyMS, InFlight: s.inflight,
			Attempts: s.attempts, Failures: s.failures,
		})
		s.mu.Unlock()
	}
	return out
}
