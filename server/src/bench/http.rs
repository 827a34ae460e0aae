//! The bench's lean HTTP/1.1 client, as `wrk` is: keep-alive connections,
//! each request's bytes made once, a response read by its `Content-Length`.
//! The server is on the same two vCPUs, so a client library's own work
//! (URL parsing, header maps, a connection task per connection, a body
//! channel between that task and the caller) would be timed with it; this
//! client leaves the server's share of a call. Rows that name reqwest use
//! reqwest, for comparison.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Requests to one server over a small pool of kept-alive connections (one
/// per concurrent caller).
#[derive(Clone)]
pub struct LeanClient {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<Conn>>>,
}

/// One request, its bytes made once.
pub struct Request(Vec<u8>);

impl Request {
    /// `POST path` with a JSON body.
    pub fn post_json(path: &str, body: &[u8]) -> Self {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        Self(r)
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes())
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl LeanClient {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let addr = base
            .strip_prefix("http://")
            .context("the bench's base URL is http://")?
            .parse()?;
        Ok(Self {
            addr,
            idle: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Sends `req` and returns the status and the body.
    pub async fn send(&self, req: &Request) -> anyhow::Result<(u16, Vec<u8>)> {
        let idle = self.idle.lock().expect("idle lock").pop();
        let mut conn = match idle {
            Some(c) => c,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                Conn {
                    stream,
                    buf: Vec::with_capacity(4096),
                }
            }
        };
        conn.stream.write_all(&req.0).await?;
        let out = conn.read_response().await?;
        self.idle.lock().expect("idle lock").push(conn);
        Ok(out)
    }
}

impl Conn {
    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("response status line")?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .context("the bench client reads responses with a Content-Length only")?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        ensure!(
            self.buf.len() == head_end + length,
            "bytes past the response on a request/response connection"
        );
        Ok((status, self.buf[head_end..].to_vec()))
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!("the server closed the connection mid-response");
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Responses come back whole over a kept-alive connection, in pieces
    /// or not, with the header's name in any case.
    #[tokio::test]
    async fn reads_responses_by_content_length_over_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for body in ["{\"a\":1}", "hello world"] {
                let n = s.read(&mut buf).await.unwrap();
                assert!(std::str::from_utf8(&buf[..n])
                    .unwrap()
                    .starts_with("POST /x HTTP/1.1\r\n"));
                let head = format!(
                    "HTTP/1.1 201 Created\r\ncontent-LENGTH: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.write_all(body.as_bytes()).await.unwrap();
            }
            // One connection served both.
            assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        });
        let client = LeanClient::new(&format!("http://{addr}")).unwrap();
        let req = Request::post_json("/x", b"{}");
        assert_eq!(
            client.send(&req).await.unwrap(),
            (201, b"{\"a\":1}".to_vec())
        );
        assert_eq!(
            client.send(&req).await.unwrap(),
            (201, b"hello world".to_vec())
        );
        drop(client);
        server.await.unwrap();
    }
}
