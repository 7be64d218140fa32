//! Dispatch by channel: one [`Delivery`] that hands each message to the adapter configured for
//! its channel and refuses the rest.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Channel, Delivery, DeliveryError, Message};

/// Sends each message through the adapter routed for its `channel`. A channel without a route
/// (or a name no adapter knows) fails with [`DeliveryError::NoAdapter`]: a code must never fall
/// through to some other channel than the one the caller chose.
#[derive(Default)]
pub struct ChannelRouter {
    routes: BTreeMap<Channel, Arc<dyn Delivery>>,
}

impl ChannelRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `channel` to `adapter`, replacing an earlier route for it.
    pub fn route(mut self, channel: Channel, adapter: Arc<dyn Delivery>) -> Self {
        self.routes.insert(channel, adapter);
        self
    }
}

#[async_trait]
impl Delivery for ChannelRouter {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let adapter = Channel::parse(&message.channel)
            .and_then(|channel| self.routes.get(&channel))
            .ok_or_else(|| DeliveryError::NoAdapter {
                channel: message.channel.clone(),
            })?;
        adapter.send(message).await
    }
}
