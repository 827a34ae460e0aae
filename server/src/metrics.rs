//! Prometheus metrics, served at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets from 100 µs (a warm wasm call) to 60 s (a slow build).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// `skybridge_http_requests_total{method,route,status}`
    pub http_requests: IntCounterVec,
    /// `skybridge_http_request_duration_seconds{method,route}`
    pub http_duration: HistogramVec,
    /// `skybridge_invocations_total{function,backend,status}`
    pub invocations: IntCounterVec,
    /// `skybridge_invoke_duration_seconds{backend}`: function run time.
    pub invoke_duration: HistogramVec,
    /// `skybridge_async_queue_depth`: queued async executions not yet started.
    pub queue_depth: IntGauge,
    /// `skybridge_builds_total{backend,result}`: real builds (cache hits excluded).
    pub builds: IntCounterVec,
    /// `skybridge_callbacks_total{result}`: callback deliveries.
    pub callbacks: IntCounterVec,
    /// `skybridge_warm_pool_total{function,result}`: docker invocations that
    /// found a warm container (`hit`) or started one cold (`miss`).
    pub warm_pool: IntCounterVec,
    /// `skybridge_warm_pool_ready{function}`: warm containers ready now.
    pub warm_ready: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .expect("metric definition");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let http_requests = counter(
            "skybridge_http_requests_total",
            "HTTP requests by method, matched route and status",
            &["method", "route", "status"],
        );
        let http_duration = histogram(
            "skybridge_http_request_duration_seconds",
            "HTTP request latency",
            &["method", "route"],
        );
        let invocations = counter(
            "skybridge_invocations_total",
            "Finished invocations by function, backend and final status",
            &["function", "backend", "status"],
        );
        let invoke_duration = histogram(
            "skybridge_invoke_duration_seconds",
            "Function run time by backend",
            &["backend"],
        );
        let builds = counter(
            "skybridge_builds_total",
            "Artifact builds actually performed (cache hits excluded)",
            &["backend", "result"],
        );
        let callbacks = counter(
            "skybridge_callbacks_total",
            "Callback deliveries by result (delivered, failed)",
            &["result"],
        );
        let warm_pool = counter(
            "skybridge_warm_pool_total",
            "Docker invocations served by a warm container (hit) or a cold start (miss)",
            &["function", "result"],
        );
        let warm_ready = IntGaugeVec::new(
            Opts::new(
                "skybridge_warm_pool_ready",
                "Warm docker containers ready for an invocation, by function",
            ),
            &["function"],
        )
        .expect("metric definition");
        registry
            .register(Box::new(warm_ready.clone()))
            .expect("unique metric");
        let queue_depth = IntGauge::new(
            "skybridge_async_queue_depth",
            "Async executions waiting for a worker",
        )
        .expect("metric definition");
        registry
            .register(Box::new(queue_depth.clone()))
            .expect("unique metric");
        Self {
            registry,
            http_requests,
            http_duration,
            invocations,
            invoke_duration,
            queue_depth,
            builds,
            callbacks,
            warm_pool,
            warm_ready,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
