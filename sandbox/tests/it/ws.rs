//! A minimal WebSocket client (RFC 6455) for the gateway tests: the opening
//! handshake, masked text frames out, unmasked frames in, pings answered. The
//! sandbox depends on no platform client, and this is all a test needs of one.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for a frame before failing (a hang guard, not a measurement).
const PATIENCE: Duration = Duration::from_secs(10);

pub struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    pub async fn connect(addr: SocketAddr, path: &str) -> Ws {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut ws = Ws {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            ws.fill().await;
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "not upgraded to a WebSocket:\n{head}"
        );
        ws.buf.drain(..end);
        ws
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("nothing from the server within 10 s")
            .expect("read");
        assert!(n > 0, "the server closed the TCP connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().await;
        }
        self.buf.drain(..n).collect()
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x5a, 0x1c, 0x93, 0x07];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("write frame");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_frame(0x1, value.to_string().as_bytes()).await;
    }

    /// The next text message, or `Err(close code)` when the server closes.
    pub async fn recv(&mut self) -> Result<String, u16> {
        let mut message = Vec::new();
        loop {
            let head = self.take(2).await;
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => u64::from(u16::from_be_bytes(self.take(2).await.try_into().unwrap())),
                127 => u64::from_be_bytes(self.take(8).await.try_into().unwrap()),
                n => u64::from(n),
            };
            assert_eq!(head[1] & 0x80, 0, "a server must not mask its frames");
            let payload = self.take(len as usize).await;
            match opcode {
                0x0 | 0x1 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return Ok(String::from_utf8(message).expect("text is UTF-8"));
                    }
                }
                0x8 => {
                    let code = payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    return Err(code);
                }
                0x9 => self.send_frame(0xA, &payload).await,
                _ => {}
            }
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        let text = self.recv().await.expect("a message, not a close");
        serde_json::from_str(&text).expect("the gateway sends JSON")
    }

    /// The next dispatch of type `event`, skipping others; its `d`.
    pub async fn dispatch(&mut self, event: &str) -> Value {
        loop {
            let frame = self.recv_json().await;
            if frame["op"] == 0 && frame["t"] == event {
                return frame["d"].clone();
            }
        }
    }
}
