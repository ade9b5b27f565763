package mcp

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. Labels carry names (key,
// server, tool), never a credential.
type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	up       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_mcp_tool_calls_total",
			Help: "MCP tool calls by virtual key, server, tool and outcome (ok, error, denied).",
		}, []string{"namespace", "key", "server", "tool", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_mcp_tool_call_duration_seconds",
			Help:    "MCP tool call latency as seen by the gateway.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"namespace", "server", "tool", "outcome"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_mcp_server_up",
			Help: "1 while the last check of an upstream MCP server succeeded.",
		}, []string{"server"}),
	}
	if reg != nil {
		m.calls = register(reg, m.calls)
		m.duration = register(reg, m.duration)
		m.up = register(reg, m.up)
	}
	return m
}

// register registers c, or reuses the collector already registered under
// the same name (a second gateway in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *metrics) observe(rec *AuditRecord, tool string, d time.Duration) {
	m.calls.WithLabelValues(rec.Namespace, rec.Key, rec.Server, tool, rec.Outcome).Inc()
	m.duration.WithLabelValues(rec.Namespace, rec.Server, tool, rec.Outcome).Observe(d.Seconds())
}

func (m *metrics) setUp(server string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(server).Set(v)
}

func (m *metrics) forgetServer(server string) {
	m.up.DeleteLabelValues(server)
}
