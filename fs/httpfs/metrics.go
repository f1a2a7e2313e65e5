package httpfs

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus metrics of a swarmfs process: per torrent
// (read from the Host at each scrape), the cache, and the reads of every
// front-end (StartRead). Safe for concurrent use. Each Metrics has its own
// registry, so tests can make several.
type Metrics struct {
	// read-only after construction
	reg      *prometheus.Registry
	inFlight *prometheus.GaugeVec
	latency  *prometheus.HistogramVec

	mu   sync.Mutex // guards host
	host Host
}

// NewMetrics makes the metrics, with Go runtime and process metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "swarmfs_reads_in_flight",
			Help: "Reads of torrent data waiting or copying, by front-end (fuse, http).",
		}, []string{"frontend"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "swarmfs_read_duration_seconds",
			Help: "Time to serve one read of torrent data (up to 1 MiB), by front-end: near zero from the cache, the swarm's delay otherwise.",
			// 100 µs to ~100 s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 11),
		}, []string{"frontend"}),
	}
	m.reg.MustRegister(m.inFlight, m.latency, collector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StartRead counts a read of the front-end (e.g. "fuse") in flight; the
// function it returns ends it and records its latency.
func (m *Metrics) StartRead(frontend string) (done func()) { return m.startRead(frontend) }

func (m *Metrics) startRead(frontend string) func() {
	g := m.inFlight.WithLabelValues(frontend)
	g.Inc()
	start := time.Now()
	return func() {
		g.Dec()
		m.latency.WithLabelValues(frontend).Observe(time.Since(start).Seconds())
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// watch makes the per-torrent and cache metrics describe h.
func (m *Metrics) watch(h Host) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.host = h
}

var (
	labels      = []string{"info_hash", "name"}
	descDown    = prometheus.NewDesc("swarmfs_torrent_downloaded_bytes_total", "Payload bytes received from peers.", labels, nil)
	descUp      = prometheus.NewDesc("swarmfs_torrent_uploaded_bytes_total", "Payload bytes sent to peers.", labels, nil)
	descWasted  = prometheus.NewDesc("swarmfs_torrent_wasted_bytes_total", "Payload bytes received but not used (duplicates, late or unasked blocks); pieces that failed their hash check are counted apart.", labels, nil)
	descHashBad = prometheus.NewDesc("swarmfs_torrent_hash_failures_total", "Pieces that failed their hash check (their senders are penalised, repeat offenders banned).", labels, nil)
	descReaders = prometheus.NewDesc("swarmfs_torrent_readers", "Open readers of the torrent's files (FUSE handles and HTTP requests).", labels, nil)
	descInFlt   = prometheus.NewDesc("swarmfs_torrent_pieces_downloading", "Pieces being fetched: a block requested or received, not yet verified.", labels, nil)
	descPeers   = prometheus.NewDesc("swarmfs_torrent_peers", "Connected peers.", labels, nil)
	descSeeds   = prometheus.NewDesc("swarmfs_torrent_seeds", "Connected peers that have every piece.", labels, nil)
	descBanned  = prometheus.NewDesc("swarmfs_torrent_banned_peers", "Peers banned for sending bad data.", labels, nil)
	descSize    = prometheus.NewDesc("swarmfs_torrent_size_bytes", "The torrent's size.", labels, nil)
	descDone    = prometheus.NewDesc("swarmfs_torrent_completed_bytes", "Bytes verified and cached.", labels, nil)
	descRateIn  = prometheus.NewDesc("swarmfs_torrent_download_rate_bytes", "Current download rate, bytes per second.", labels, nil)
	descRateOut = prometheus.NewDesc("swarmfs_torrent_upload_rate_bytes", "Current upload rate, bytes per second.", labels, nil)
	descCache   = prometheus.NewDesc("swarmfs_cache_size_bytes", "Bytes of pieces in the cache.", nil, nil)
	descCap     = prometheus.NewDesc("swarmfs_cache_capacity_bytes", "The cache's capacity.", nil, nil)
	descDisk    = prometheus.NewDesc("swarmfs_cache_disk_bytes", "Disk space the cache uses.", nil, nil)
	descTorr    = prometheus.NewDesc("swarmfs_torrents", "Torrents running.", nil, nil)
)

// collector reads the host's torrents and cache at each scrape.
type collector struct{ m *Metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDown, descUp, descWasted, descHashBad, descReaders, descInFlt, descPeers, descSeeds, descBanned,
		descSize, descDone, descRateIn, descRateOut, descCache, descCap, descDisk, descTorr} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	h := c.m.host
	c.m.mu.Unlock()
	if h == nil {
		return
	}
	fs := folders(h)
	ch <- prometheus.MustNewConstMetric(descTorr, prometheus.GaugeValue, float64(len(fs)))
	for _, f := range fs {
		st := f.t.Stats()
		lv := []string{f.t.InfoHash().String(), f.name}
		for _, v := range []struct {
			d *prometheus.Desc
			t prometheus.ValueType
			v float64
		}{
			{descDown, prometheus.CounterValue, float64(st.Downloaded)},
			{descUp, prometheus.CounterValue, float64(st.Uploaded)},
			{descWasted, prometheus.CounterValue, float64(st.Wasted)},
			{descHashBad, prometheus.CounterValue, float64(st.HashFailures)},
			{descReaders, prometheus.GaugeValue, float64(len(st.Readers))},
			{descInFlt, prometheus.GaugeValue, float64(len(st.Downloading))},
			{descPeers, prometheus.GaugeValue, float64(st.Peers)},
			{descSeeds, prometheus.GaugeValue, float64(st.Seeds)},
			{descBanned, prometheus.GaugeValue, float64(st.Banned)},
			{descSize, prometheus.GaugeValue, float64(st.Size)},
			{descDone, prometheus.GaugeValue, float64(st.Completed)},
			{descRateIn, prometheus.GaugeValue, st.DownloadRate},
			{descRateOut, prometheus.GaugeValue, st.UploadRate},
		} {
			ch <- prometheus.MustNewConstMetric(v.d, v.t, v.v, lv...)
		}
	}
	cs := h.Cache()
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.GaugeValue, float64(cs.Size))
	ch <- prometheus.MustNewConstMetric(descCap, prometheus.GaugeValue, float64(cs.Capacity))
	ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(cs.Disk))
}
