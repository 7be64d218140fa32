//! Every adapter's sends, timed and counted as Prometheus series (through the `metrics` facade):
//! `deskgate_delivery_duration_seconds` and `deskgate_delivery_failures_total`, by channel and
//! message kind. Labels never carry the destination, the body or the secret.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use metrics::{counter, histogram};

use crate::{Channel, Delivery, DeliveryError, Message};

/// Wraps the delivery the server uses; see [`crate::build`].
pub(crate) struct Metered(pub(crate) Arc<dyn Delivery>);

#[async_trait]
impl Delivery for Metered {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let channel = Channel::parse(&message.channel).map_or("other", Channel::as_str);
        let kind = label(&message.kind);
        let started = Instant::now();
        let result = self.0.send(message).await;
        histogram!("deskgate_delivery_duration_seconds", "channel" => channel, "kind" => kind.clone())
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            counter!("deskgate_delivery_failures_total", "channel" => channel, "kind" => kind)
                .increment(1);
        }
        result
    }
}

/// The message kind as a label: kinds are the application's own words (`verification_code`,
/// `attestation_link`, ...); anything else is `other`, so no caller can mint series.
fn label(kind: &str) -> String {
    if !kind.is_empty()
        && kind.len() <= 40
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        kind.to_owned()
    } else {
        "other".to_owned()
    }
}
