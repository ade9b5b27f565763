package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/router"
)

// Metrics are the data plane's request and routing metrics (token, cost
// and sensitive-data metrics belong to the metering and guard packages). Labels carry names of
// resources (namespace, key name, team, route, provider, model), never a
// secret or a key value.
type Metrics struct {
	Requests      *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	TTFT          *prometheus.HistogramVec
	Attempts      *prometheus.CounterVec
	Fallbacks     *prometheus.CounterVec
	IntentRules   *prometheus.CounterVec
	Panics        prometheus.Counter
	Table         *prometheus.GaugeVec
	tableMu       sync.Mutex
	lastVersion   string
	healthSource  *router.Health
	healthEjected *prometheus.Desc
	healthLatency *prometheus.Desc
	healthErrors  *prometheus.Desc
}

// RequestLabels are the labels of per-request series.
var RequestLabels = []string{"namespace", "key", "team", "route", "provider", "model"}

// NewMetrics registers the metrics with reg (nil: a private registry, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	latencyBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total", Help: "Requests answered, by outcome HTTP code.",
		}, append(append([]string{}, RequestLabels...), "code")),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tollgate_request_duration_seconds", Help: "Total request latency as seen by the gateway.", Buckets: latencyBuckets,
		}, RequestLabels),
		TTFT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tollgate_time_to_first_token_seconds", Help: "Time from request to the first streamed chunk.", Buckets: latencyBuckets,
		}, RequestLabels),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_upstream_attempts_total", Help: "Upstream attempts by outcome (ok, error, retryable, timeout, connect).",
		}, []string{"namespace", "provider", "model", "outcome"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_fallbacks_total", Help: "Requests answered by a target other than the first planned.",
		}, []string{"namespace", "route"}),
		IntentRules: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_intent_rule_matches_total", Help: "Requests routed by an intent rule.",
		}, []string{"namespace", "route", "rule"}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_panics_recovered_total", Help: "Panics recovered in request handlers.",
		}),
		Table: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_routing_table_info", Help: "The routing table version in use (value 1).",
		}, []string{"version"}),
		healthEjected: prometheus.NewDesc("tollgate_target_ejected", "1 while a target is ejected after failures.", []string{"provider", "model"}, nil),
		healthLatency: prometheus.NewDesc("tollgate_target_latency_ewma_seconds", "EWMA time to first byte per target.", []string{"provider", "model"}, nil),
		healthErrors:  prometheus.NewDesc("tollgate_target_error_rate", "EWMA error rate per target (0..1).", []string{"provider", "model"}, nil),
	}
	reg.MustRegister(m.Requests, m.Duration, m.TTFT, m.Attempts, m.Fallbacks, m.IntentRules,
		m.Panics, m.Table, healthCollector{m})
	return m
}

func (m *Metrics) tableVersion(v string) {
	m.tableMu.Lock()
	defer m.tableMu.Unlock()
	if m.lastVersion != "" {
		m.Table.DeleteLabelValues(m.lastVersion)
	}
	m.Table.WithLabelValues(v).Set(1)
	m.lastVersion = v
}

// healthCollector exports live target health at scrape time.
type healthCollector struct{ m *Metrics }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.healthEjected
	ch <- c.m.healthLatency
	ch <- c.m.healthErrors
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.m.healthSource
	if h == nil {
		return
	}
	for _, t := range h.Snapshot() {
		ej := 0.0
		if t.Ejected {
			ej = 1
		}
		ch <- prometheus.MustNewConstMetric(c.m.healthEjected, prometheus.GaugeValue, ej, t.Key.Provider, t.Key.Model)
		ch <- prometheus.MustNewConstMetric(c.m.healthLatency, prometheus.GaugeValue, t.LatencyMS/1000, t.Key.Provider, t.Key.Model)
		ch <- prometheus.MustNewConstMetric(c.m.healthErrors, prometheus.GaugeValue, t.ErrorRate, t.Key.Provider, t.Key.Model)
	}
}
