package metering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// reporter sends cumulative usage to the controller every interval. A
// report is only "dropped" in the sense that matters once acknowledged:
// the figures are cumulative and stay in the key states, so a failed
// report is simply superseded by the next one, with a higher Seq, that
// carries everything the failed one did and more.
type reporter struct {
	mu      sync.Mutex // one report in flight at a time
	m       *Meter
	seq     int64
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	backoff time.Duration
}

func newReporter(m *Meter) *reporter {
	return &reporter{m: m, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// wakeReporter asks for a report now (a key ran out of its share).
func (m *Meter) wakeReporter() {
	if m.rep == nil {
		return
	}
	select {
	case m.rep.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run() {
	defer close(r.done)
	t := time.NewTimer(r.m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.wake:
			// At most one extra report per interval/4, so a storm of
			// refusals cannot turn into a storm of reports.
			time.Sleep(r.m.opts.Interval / 4)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.once(ctx, false)
		cancel()
		next := r.m.opts.Interval
		if err != nil {
			r.m.log.V(1).Info("Usage report failed; will retry", "error", err.Error())
			r.backoff = min(max(r.backoff*2, r.m.opts.Interval), 10*time.Second)
			next = r.backoff
		} else {
			r.backoff = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// Flush sends a report now and waits for its acknowledgement.
func (m *Meter) Flush(ctx context.Context) error {
	if m.rep == nil {
		return nil
	}
	return m.rep.once(ctx, true)
}

// Close stops reporting and flushes what is unreported, retrying for at
// most FlushTimeout. Call it once no request is in flight.
func (m *Meter) Close() {
	if m.rep == nil {
		return
	}
	close(m.rep.stop)
	<-m.rep.done
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.FlushTimeout)
	defer cancel()
	for {
		err := m.rep.once(ctx, true)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			m.log.Error(err, "Could not flush usage to the controller before shutdown")
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// build snapshots every key with something to say: unreported usage, a
// budget whose allowance needs refreshing, or no answer yet.
func (r *reporter) build(all bool) *Report {
	m := r.m
	r.seq++
	rep := &Report{Replica: m.opts.Replica, Epoch: m.epoch, Seq: r.seq}
	now := m.now()
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	for _, ks := range m.keys {
		ks.mu.Lock()
		if ks.src != nil {
			ks.derive(ks.src, now)
		}
		// A budgeted key with nothing new is still reported now and then,
		// so its allowance stays fresh without a status write per interval.
		refresh := (ks.key.limit > 0 || (ks.hasTeam && ks.tm.limit > 0)) && now.Sub(ks.lastAck) >= m.opts.AllowanceTTL/3
		if ks.src == nil || !(ks.dirty || refresh || all || ks.lastAck.IsZero()) {
			ks.mu.Unlock()
			continue
		}
		kr := KeyReport{Key: ks.id, PeriodStart: ks.key.start, Counters: ks.counters}
		kr.SpendNanos = ks.key.cum
		if ks.hasTeam {
			kr.TeamPeriodStart, kr.TeamSpendNanos = ks.tm.start, ks.tm.cum
		}
		ks.sentSeq, ks.sentCum, ks.sentTeam = r.seq, ks.key.cum, ks.tm.cum
		ks.sentStart, ks.sentTeamStart = ks.key.start, ks.tm.start
		ks.dirty = false
		ks.mu.Unlock()
		rep.Keys = append(rep.Keys, kr)
	}
	return rep
}

// once sends one report and applies the answer.
func (r *reporter) once(ctx context.Context, all bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.m
	rep := r.build(all)
	if len(rep.Keys) == 0 {
		return nil
	}
	ack, err := r.send(ctx, rep)
	if err != nil {
		m.metrics.reports.WithLabelValues("error").Inc()
		r.redirty(rep)
		return err
	}
	m.metrics.reports.WithLabelValues("ok").Inc()
	m.apply(rep.Seq, ack)
	return nil
}

// redirty marks keys of a failed report for the next one.
func (r *reporter) redirty(rep *Report) {
	m := r.m
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	for _, kr := range rep.Keys {
		if ks := m.keys[kr.Key]; ks != nil {
			ks.mu.Lock()
			ks.dirty = true
			ks.mu.Unlock()
		}
	}
}

// errNotAcknowledged is returned when the controller did not take a report.
var errNotAcknowledged = errors.New("usage report not acknowledged")

func (r *reporter) send(ctx context.Context, rep *Report) (*Ack, error) {
	m := r.m
	body, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.opts.ReportURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if m.opts.Token != nil {
		tok, err := m.opts.Token()
		if err != nil {
			return nil, fmt.Errorf("usage report token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := m.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: controller answered %d: %s", errNotAcknowledged, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 256)]))
	}
	var ack Ack
	if err := json.Unmarshal(b, &ack); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotAcknowledged, err)
	}
	if ack.Seq != rep.Seq {
		return nil, fmt.Errorf("%w: answer for seq %d, sent %d", errNotAcknowledged, ack.Seq, rep.Seq)
	}
	return &ack, nil
}

// apply takes the controller's global view and allowances.
func (m *Meter) apply(seq int64, ack *Ack) {
	if ack.Replicas > 0 {
		m.replicas.Store(int64(ack.Replicas))
	}
	now := m.now()
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	for i := range ack.Keys {
		st := &ack.Keys[i]
		ks := m.keys[st.Key]
		if ks == nil {
			continue
		}
		ks.mu.Lock()
		if ks.sentSeq == seq {
			ks.lastAck = now
			if st.PeriodStart.Equal(ks.key.start) && ks.sentStart.Equal(ks.key.start) {
				ks.key.global, ks.key.acked = st.SpendNanos, ks.sentCum
				if st.BudgetNanos > 0 {
					ks.key.allow, ks.key.allowAt = st.AllowanceNanos, now
				} else {
					ks.key.allowAt = time.Time{}
				}
			}
			if ks.hasTeam && st.TeamPeriodStart.Equal(ks.tm.start) && ks.sentTeamStart.Equal(ks.tm.start) {
				ks.tm.global, ks.tm.acked = st.TeamSpendNanos, ks.sentTeam
				if st.TeamBudgetNanos > 0 {
					ks.tm.allow, ks.tm.allowAt = st.TeamAllowanceNanos, now
				} else {
					ks.tm.allowAt = time.Time{}
				}
			}
		}
		ks.mu.Unlock()
	}
}
