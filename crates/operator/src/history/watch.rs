//! Watches the cluster's Events and hands each to the store as it arrives: a raw watcher
//! stream, no reflector cache, so no Event is held in memory beyond the one in hand.
//! `events.k8s.io/v1` where the server serves it, `core/v1` otherwise.

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube9_store::{EventRow, Write};

use crate::base::backoff::{Outage, WatchBackoff};

use super::event::{from_core_v1, from_events_v1};
use super::writer::Recorder;

/// Which API the Events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    EventsV1,
    CoreV1,
}

/// `events.k8s.io/v1` when the server serves it (Kubernetes 1.19 on), else `core/v1`.
pub async fn source(client: &kube::Client) -> Source {
    let api: Api<Event> = Api::all(client.clone());
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Source::CoreV1,
        _ => Source::EventsV1,
    }
}

/// Runs until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    recorder: Recorder,
    outage: Outage,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let source = source(&client).await;
    tracing::info!(?source, "watching the cluster's Events for the event history");
    let config = watcher::Config::default();
    let pump = async move {
        match source {
            Source::EventsV1 => {
                pump(watcher(Api::<Event>::all(client), config), from_events_v1, &recorder, &outage).await
            }
            Source::CoreV1 => {
                pump(watcher(Api::<CoreEvent>::all(client), config), from_core_v1, &recorder, &outage).await
            }
        }
    };
    tokio::select! {
        () = pump => {}
        () = shutdown => {}
    }
}

async fn pump<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    map: fn(&K) -> Option<EventRow>,
    recorder: &Recorder,
    outage: &Outage,
) where
    K: Clone + Send + 'static,
{
    let mut stream = std::pin::pin!(stream.backoff(WatchBackoff::new(outage)));
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Apply(event) | watcher::Event::InitApply(event)) => {
                if let Some(row) = map(&event) {
                    drop(event);
                    recorder.send(Write::Event(row)).await;
                }
            }
            // A deleted Event (expired after its hour) stays in the history.
            Ok(watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => tracing::warn!(error = %e, "the Events watch failed; retrying"),
        }
    }
}
