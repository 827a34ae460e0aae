//! Delivery of finished executions to `callback_url` by POST, with bounded retries.

use std::sync::Arc;
use std::time::Duration;

use crate::config::ExecutionsConfig;
use crate::metrics::Metrics;
use crate::model::Execution;

/// Sends callbacks in the background.
#[derive(Clone)]
pub struct CallbackSender {
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    metrics: Arc<Metrics>,
}

/// Checks that `url` is an absolute http(s) URL as the contract describes it
/// (a DNS name or an IPv4 address, printable ASCII).
pub fn check_url(url: &str) -> Result<(), String> {
    use crate::contract;
    if !contract::fits(&contract::CALLBACK_URL, contract::MAX_URL_CHARS, url) {
        return Err(format!(
            "must be an http:// or https:// URL with a DNS name or IPv4 address as host, in printable ASCII, at most {} characters",
            contract::MAX_URL_CHARS
        ));
    }
    reqwest::Url::parse(url)
        .map(|_| ())
        .map_err(|e| format!("is not a URL: {e}"))
}

impl CallbackSender {
    /// A sender with the configured attempts, backoff and per-request timeout.
    pub fn new(cfg: &ExecutionsConfig, metrics: Arc<Metrics>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.callback_timeout_ms))
            .user_agent(concat!("skybridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client builds");
        Self {
            client,
            attempts: cfg.callback_attempts.max(1),
            backoff: Duration::from_millis(cfg.callback_backoff_ms),
            metrics,
        }
    }

    /// Posts `execution` to `url` in the background; retries on errors and non-2xx
    /// answers, doubling the delay, up to the configured number of attempts.
    pub fn send(&self, url: String, execution: Execution) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut delay = this.backoff;
            for attempt in 1..=this.attempts {
                let result = this.client.post(&url).json(&execution).send().await;
                match result {
                    Ok(resp) if resp.status().is_success() => {
                        this.metrics
                            .callbacks
                            .with_label_values(&["delivered"])
                            .inc();
                        return;
                    }
                    Ok(resp) => {
                        tracing::warn!(execution = %execution.id, attempt, status = %resp.status(), "callback refused")
                    }
                    Err(e) => {
                        tracing::warn!(execution = %execution.id, attempt, error = %e, "callback failed")
                    }
                }
                if attempt < this.attempts {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
            this.metrics.callbacks.with_label_values(&["failed"]).inc();
            tracing::error!(execution = %execution.id, url = %url, "callback given up");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn only_http_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
    }
}
