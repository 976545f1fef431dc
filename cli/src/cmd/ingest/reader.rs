//! The streaming reader of `ingest`: JSON lines in, parts of batches out
//! (whole batches through [`Gather`]), on a thread of its own, so that
//! parsing the next batch overlaps the evaluation and the store write of
//! this one while memory holds a few batches, never the file.
//!
//! A line that is not an order (bad JSON, a bad field, not UTF-8) does not
//! stop the stream: it travels with its batch as a [`BadLine`] naming the
//! line and the field, and the lines around it are ingested. A read error
//! ends the stream: the batch read so far is sent, then the error.

use std::io::BufRead;

use creatorflow::Order;
use tokio::sync::mpsc;

/// A line that is not an order.
#[derive(Debug)]
pub struct BadLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// Why (the field and what is wrong with it).
    pub message: String,
}

/// What the reader sends: the orders of up to one batch, the bad lines
/// among them, and how far the input has been read.
#[derive(Debug, Default)]
pub struct Batch {
    /// The orders, in input order.
    pub orders: Vec<Order>,
    /// The bad lines read since the previous batch.
    pub bad: Vec<BadLine>,
    /// Bytes of input read so far.
    pub bytes: u64,
}

/// One message of the reader: a batch, or the read error that ended the
/// stream.
pub type Message = Result<Batch, String>;

/// How many parts may wait between the reader and the ingest: with the
/// part being read, about one batch (`PART` × 5) parsed ahead.
const AHEAD: usize = 4;

/// Starts reading `input` on a new thread, `batch` orders at a time;
/// `name` (the file, or `-`) goes into read errors. The stream ends when
/// the input does, after a read error, or when the receiver is dropped.
pub fn spawn(
    input: Box<dyn BufRead + Send>,
    name: String,
    batch: usize,
) -> (mpsc::Receiver<Message>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(AHEAD);
    let handle = std::thread::spawn(move || read(input, &name, batch, &tx));
    (rx, handle)
}

/// The reader thread's loop.
fn read(mut input: Box<dyn BufRead + Send>, name: &str, size: usize, tx: &mpsc::Sender<Message>) {
    let mut buf = Vec::with_capacity(1024);
    let mut batch = Batch {
        orders: Vec::with_capacity(size),
        ..Batch::default()
    };
    let mut line = 0u64;
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                batch.bytes = bytes;
                let _ = tx.blocking_send(Ok(batch));
                let _ = tx.blocking_send(Err(format!("cannot read {name}: {e}")));
                return;
            }
        };
        if n == 0 {
            break;
        }
        line += 1;
        bytes += n as u64;
        match parse(&buf) {
            Ok(None) => {}
            Ok(Some(order)) => batch.orders.push(order),
            Err(message) => batch.bad.push(BadLine { line, message }),
        }
        if batch.orders.len() >= size {
            batch.bytes = bytes;
            let full = std::mem::replace(
                &mut batch,
                Batch {
                    orders: Vec::with_capacity(size),
                    ..Batch::default()
                },
            );
            if tx.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    batch.bytes = bytes;
    if !batch.orders.is_empty() || !batch.bad.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

/// How many orders the reader sends at a time: a part of a batch, so that
/// it parses little more than a batch ahead (memory), while [`Gather`]
/// hands the ingest whole batches (one store transaction each; `BULK_BATCH`
/// is a multiple of it).
pub const PART: usize = 1_000;

/// Whole batches of `size` orders out of the reader's parts.
pub struct Gather {
    rx: mpsc::Receiver<Message>,
    size: usize,
    /// A read error that came after the orders of the batch being gathered.
    error: Option<String>,
}

impl Gather {
    /// Gathers the parts `rx` receives into batches of `size` orders.
    pub fn new(rx: mpsc::Receiver<Message>, size: usize) -> Self {
        Gather {
            rx,
            size,
            error: None,
        }
    }

    /// The next batch: whole parts up to at least `size` orders (exactly
    /// `size` when it is a multiple of the parts' size; fewer at the end of
    /// the input) with the bad lines among them, or the read error that
    /// ended the stream (after the orders read before it).
    pub async fn recv(&mut self) -> Option<Message> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let mut batch: Option<Batch> = None;
        while batch.as_ref().is_none_or(|b| b.orders.len() < self.size) {
            match self.rx.recv().await {
                None => break,
                Some(Err(e)) if batch.is_some() => {
                    self.error = Some(e);
                    break;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(part)) => match batch.as_mut() {
                    None => {
                        let mut orders = Vec::with_capacity(self.size.max(part.orders.len()));
                        orders.extend(part.orders);
                        batch = Some(Batch { orders, ..part });
                    }
                    Some(b) => {
                        b.orders.extend(part.orders);
                        b.bad.extend(part.bad);
                        b.bytes = part.bytes;
                    }
                },
            }
        }
        batch.map(Ok)
    }
}

/// One line: an order, nothing (a blank line), or why it is not an order.
fn parse(raw: &[u8]) -> Result<Option<Order>, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Order::from_json(text).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"tiktok_order_id":"1","customer_handle":"@a","product_name":"Lamp","product_id":"p1","quantity":1,"price":"2.00","created_at":"2025-06-12T10:00:00Z"}"#;

    fn all(text: Vec<u8>, size: usize) -> Vec<Message> {
        let (mut rx, handle) = spawn(Box::new(std::io::Cursor::new(text)), "f".into(), size);
        let mut out = Vec::new();
        while let Some(m) = rx.blocking_recv() {
            out.push(m);
        }
        handle.join().expect("reader thread");
        out
    }

    #[test]
    fn batches_name_bad_lines_and_count_bytes() {
        let mut text = Vec::new();
        for i in 0..5 {
            text.extend_from_slice(GOOD.replace("\"1\"", &format!("\"{i}\"")).as_bytes());
            text.push(b'\n');
            if i == 2 {
                text.extend_from_slice(b"\n{\"tiktok_order_id\":5}\n\xff\xfe\n");
            }
        }
        let len = text.len() as u64;
        let got = all(text, 2);
        let batches: Vec<Batch> = got.into_iter().map(|m| m.expect("no read error")).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.orders.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let bad: Vec<(u64, &str)> = batches
            .iter()
            .flat_map(|b| b.bad.iter().map(|x| (x.line, x.message.as_str())))
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].0, 5);
        assert!(bad[0].1.contains("tiktok_order_id"), "{}", bad[0].1);
        assert_eq!(bad[1].0, 6);
        assert!(bad[1].1.starts_with("not UTF-8"), "{}", bad[1].1);
        assert_eq!(batches.last().map(|b| b.bytes), Some(len));
        let ids: Vec<String> = batches
            .iter()
            .flat_map(|b| b.orders.iter().map(|o| o.tiktok_order_id.clone()))
            .collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4"]);
    }

    /// Parts of 2 gathered into batches of 3: whole batches, the bad lines
    /// with them, the last one short.
    #[tokio::test]
    async fn gather_makes_whole_batches_of_parts() {
        let mut text = Vec::new();
        for i in 0..8 {
            text.extend_from_slice(GOOD.replace("\"1\"", &format!("\"{i}\"")).as_bytes());
            text.push(b'\n');
            if i == 4 {
                text.extend_from_slice(b"oops\n");
            }
        }
        let (rx, handle) = spawn(Box::new(std::io::Cursor::new(text)), "f".into(), 2);
        let mut gather = Gather::new(rx, 3);
        let mut shape = Vec::new();
        while let Some(m) = gather.recv().await {
            let b = m.expect("no read error");
            shape.push((
                b.orders.len(),
                b.bad.iter().map(|x| x.line).collect::<Vec<_>>(),
            ));
        }
        handle.join().expect("reader thread");
        assert_eq!(shape, [(4, vec![]), (4, vec![6])]);
    }

    #[test]
    fn empty_input_sends_nothing() {
        assert!(all(Vec::new(), 10).is_empty());
        assert!(all(b"\n  \n".to_vec(), 10).is_empty());
    }
}
