//! Usage metrics in-process: the same `audit` line that CloudWatch Logs carries to the
//! aggregator function on AWS is caught here by a tracing layer and recorded through
//! the key-value port on the server's own store.
//!
//! The layer only parses the line's fields and hands an event to a bounded channel
//! (no I/O on the request's path); one task writes batches. A full channel drops the
//! event and the task logs how many were dropped: never silently. A `Flush` message
//! waits for everything queued before it, so `metrics` reports what was served.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use fhir_store::KeyValueStore;
use tokio::sync::{mpsc, oneshot};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use usage_metrics::{AccessEvent, AuditFields, Batch};

/// Events waiting to be written; beyond this the server is far behind and drops.
const QUEUE: usize = 65_536;
/// Events written per batch at most.
const BATCH: usize = 4096;
/// Write attempts per batch before the events are given up (and logged as lost).
const ATTEMPTS: u32 = 3;
/// After the first event of a batch, how long to let more gather: a busy server then
/// writes a few batches a second (each one redb commit) instead of one per request.
const GATHER: std::time::Duration = std::time::Duration::from_millis(250);

enum Message {
    Event(AccessEvent),
    Flush(oneshot::Sender<()>),
}

struct Sink {
    sender: mpsc::Sender<Message>,
    /// Makes local event ids unique across restarts of `serve`.
    started_ms: i64,
    next_id: AtomicU64,
    dropped: AtomicU64,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// The tracing layer for `patient-access`: inert until [`start`] runs.
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    AuditLayer.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.target() == "audit"
    }))
}

/// Starts recording into `store`; returns false when already started in this process.
pub fn start<K: KeyValueStore + 'static>(store: std::sync::Arc<K>) -> bool {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let sink = Sink {
        sender,
        started_ms: now_ms(),
        next_id: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    };
    if SINK.set(sink).is_err() {
        return false;
    }
    tokio::spawn(write_batches(store, receiver));
    true
}

/// Waits until every access queued before this call is written. False when not
/// recording.
pub async fn flush() -> bool {
    let Some(sink) = SINK.get() else {
        return false;
    };
    let (done, wait) = oneshot::channel();
    if sink.sender.send(Message::Flush(done)).await.is_err() {
        return false;
    }
    wait.await.is_ok()
}

struct AuditLayer;

impl<S: tracing::Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let Some(sink) = SINK.get() else {
            return;
        };
        let mut fields = FieldReader(AuditFields::default());
        event.record(&mut fields);
        let id = sink.next_id.fetch_add(1, Ordering::Relaxed);
        let event_id = format!("L{}-{id}", sink.started_ms);
        let Some(access) = AccessEvent::from_audit(fields.0, now_ms(), &event_id) else {
            return;
        };
        if sink.sender.try_send(Message::Event(access)).is_err() {
            sink.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct FieldReader(AuditFields);

impl Visit for FieldReader {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "status" => self.0.status = u16::try_from(value).unwrap_or_default(),
            "count" => self.0.count = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or_default());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_text(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields and the message arrive here; their Debug is their Display.
        self.set_text(field, format!("{value:?}"));
    }
}

impl FieldReader {
    fn set_text(&mut self, field: &Field, text: String) {
        match field.name() {
            "message" => self.0.message = text,
            "client_id" => self.0.client_id = text,
            "patient" => self.0.patient = text,
            "resource_type" => self.0.resource_type = text,
            _ => {}
        }
    }
}

async fn write_batches<K: KeyValueStore>(
    store: std::sync::Arc<K>,
    mut receiver: mpsc::Receiver<Message>,
) {
    let mut events = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        if matches!(first, Message::Event(_)) {
            tokio::time::sleep(GATHER).await;
        }
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => events.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            if events.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !events.is_empty() {
            write(store.as_ref(), &Batch::of(&events), events.len()).await;
            events.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if let Some(sink) = SINK.get() {
            let dropped = sink.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "usage metrics: accesses not recorded, the queue was full"
                );
            }
        }
    }
}

async fn write<K: KeyValueStore>(store: &K, batch: &Batch, events: usize) {
    for attempt in 1..=ATTEMPTS {
        match usage_metrics::records::record(store, batch).await {
            Ok(()) => return,
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "usage metrics: writing a batch failed, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            Err(error) => {
                tracing::error!(%error, events, "usage metrics: accesses not recorded");
            }
        }
    }
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
