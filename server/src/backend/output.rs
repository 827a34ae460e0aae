//! Capped capture of a function's stdout/stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` traps the guest when full, which would turn a
//! chatty function into a failed one. [`CappedOutput`] instead keeps the first
//! `cap` bytes, silently drops the rest and remembers that it did, so the
//! execution ends on its own terms with a visible `*_truncated` flag.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Permit handed to the guest per write; any size works, this bounds copies.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    data: Vec<u8>,
    truncated: bool,
}

/// A shared, capped in-memory sink. Clones write to the same buffer.
#[derive(Debug, Clone)]
pub struct CappedOutput {
    cap: usize,
    buf: Arc<Mutex<Buffer>>,
}

impl CappedOutput {
    /// A sink keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: Arc::default(),
        }
    }

    /// Appends, keeping at most `cap` bytes in all.
    pub fn append(&self, bytes: &[u8]) {
        let mut b = self.buf.lock().expect("output buffer lock");
        let room = self.cap.saturating_sub(b.data.len());
        if bytes.len() > room {
            b.truncated = true;
        }
        let take = bytes.len().min(room);
        b.data.extend_from_slice(&bytes[..take]);
    }

    /// The captured bytes and whether anything was dropped.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut b = self.buf.lock().expect("output buffer lock");
        (std::mem::take(&mut b.data), b.truncated)
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_flags_the_rest() {
        let out = CappedOutput::new(5);
        out.clone().append(b"abc");
        assert_eq!(out.take(), (b"abc".to_vec(), false));
        let out = CappedOutput::new(5);
        out.append(b"abc");
        out.append(b"defgh");
        out.append(b"ij");
        assert_eq!(out.take(), (b"abcde".to_vec(), true));
    }
}
