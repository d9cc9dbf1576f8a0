//! An incremental reader of server-sent events as Chat Completions streams
//! them: bytes arrive in arbitrary pieces; complete `data:` events come out.
//! Comments (`:`), `event:`/`id:`/`retry:` fields and blank keep-alives are
//! skipped; a multi-line `data` is joined with newlines, as the format says.

/// Bytes in, events out.
#[derive(Debug, Default)]
pub struct SseReader {
    buf: Vec<u8>,
    data: Option<String>,
}

/// What one complete event carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseEvent {
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// An event too big to be an answer's piece: the stream is refused.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

impl SseReader {
    /// Feed bytes; returns the events they complete. `Err`: a line is not
    /// UTF-8 or an event is past [`MAX_EVENT_BYTES`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line)
                .map_err(|_| "a line of the stream is not UTF-8".to_string())?;
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    out.push(if data.trim() == "[DONE]" {
                        SseEvent::Done
                    } else {
                        SseEvent::Data(data)
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            if field == "data" {
                let data = self.data.get_or_insert_with(String::new);
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
                if data.len() > MAX_EVENT_BYTES {
                    return Err(format!(
                        "an event of the stream is over {MAX_EVENT_BYTES} bytes"
                    ));
                }
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(format!(
                "a line of the stream is over {MAX_EVENT_BYTES} bytes"
            ));
        }
        Ok(out)
    }

    /// The stream ended: an event without its blank line still counts.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.data.take().map(|d| {
            if d.trim() == "[DONE]" {
                SseEvent::Done
            } else {
                SseEvent::Data(d)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_whole_however_the_bytes_are_cut() {
        let stream = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata: line1\ndata: line2\r\n\r\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut r = SseReader::default();
            let mut events = r.feed(&stream[..cut]).unwrap();
            events.extend(r.feed(&stream[cut..]).unwrap());
            assert_eq!(
                events,
                vec![
                    SseEvent::Data("{\"a\":1}".into()),
                    SseEvent::Data("line1\nline2".into()),
                    SseEvent::Done
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bad_bytes_and_huge_lines_are_refused() {
        let mut r = SseReader::default();
        assert!(r.feed(b"data: \xff\xfe\n").is_err());
        let mut r = SseReader::default();
        assert!(r.feed(&vec![b'x'; MAX_EVENT_BYTES + 1]).is_err());
    }
}
