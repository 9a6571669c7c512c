// The render benchmark's workload with Go's client_golang, for comparison
// in the same run as bench-render.  Builds offline:
//   GO111MODULE=off GOPATH=/usr/share/gocode go run render.go SERIES [RUNS] [serve PORT]
// With "serve PORT" it serves the registry with promhttp on 127.0.0.1
// instead (for the wrk comparison).
package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

func main() {
	series, _ := strconv.Atoi(os.Args[1])
	runs := 5
	if len(os.Args) > 2 {
		runs, _ = strconv.Atoi(os.Args[2])
	}
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	labels := []string{"campaign_id", "user_id"}
	reg := prometheus.NewRegistry()
	var counters []*prometheus.CounterVec
	var gauges []*prometheus.GaugeVec
	var hists []*prometheus.HistogramVec
	for k := 0; k < 10; k++ {
		switch {
		case k < 6:
			c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: fmt.Sprintf("bench_counter_%d_total", k), Help: "A counter"}, labels)
			reg.MustRegister(c)
			counters = append(counters, c)
		case k < 8:
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: fmt.Sprintf("bench_gauge_%d", k), Help: "A gauge"}, labels)
			reg.MustRegister(g)
			gauges = append(gauges, g)
		default:
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: fmt.Sprintf("bench_histogram_%d_seconds", k), Help: "A histogram", Buckets: bounds}, labels)
			reg.MustRegister(h)
			hists = append(hists, h)
		}
	}
	for i := 0; i < series; i++ {
		k := i % 10
		c, u := fmt.Sprintf("campaign-%08d", i), fmt.Sprintf("user-%04d", i%1000)
		switch {
		case k < 6:
			counters[k].WithLabelValues(c, u).Add(float64(i))
		case k < 8:
			gauges[k-6].WithLabelValues(c, u).Set(float64(i) * 0.5)
		default:
			hists[k-8].WithLabelValues(c, u).Observe(float64(i%40) * 0.13)
		}
	}
	if len(os.Args) > 4 && os.Args[3] == "serve" {
		http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		fmt.Println(http.ListenAndServe("127.0.0.1:"+os.Args[4], nil))
		return
	}
	var times []float64
	var size int
	for r := 0; r < runs; r++ {
		t0 := time.Now()
		mfs, _ := reg.Gather()
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.FmtText)
		for _, mf := range mfs {
			enc.Encode(mf)
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
		size = buf.Len()
	}
	sort.Float64s(times)
	fmt.Printf("go client_golang series %7d  render median %9.2f ms  min %9.2f  bytes %d\n", series, times[len(times)/2], times[0], size)
}
