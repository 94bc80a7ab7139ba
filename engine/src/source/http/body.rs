//! Response bodies: [`BodyStream`] applies the stall timeout, the size cap, the byte
//! counter and cancellation to the chunks of a response, holds the request's slot in
//! its host's window until it ends (and tells the scheduler how it ended), and can buffer the whole body ([`BodyStream::read_all`]);
//! [`BodyReader`] turns it into an [`AsyncRead`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Url;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::Counters;
use super::gate::Slot;
use super::scheduler::Outcome;
use crate::source::{FetchError, SourceOptions};

/// Initial buffer reservation for a body of unknown length, so a lying or missing
/// `Content-Length` cannot make us reserve the whole cap up front.
const INITIAL_RESERVE: u64 = 64 * 1024;

/// [`FetchError::Stall`] for `url` after `stall` without a byte (whole seconds, rounded
/// up).
pub(super) fn stall_error(
    url: &dyn std::fmt::Display,
    stall: Duration,
    attempts: u32,
) -> FetchError {
    let mut seconds = stall.as_secs();
    if stall.subsec_nanos() > 0 {
        seconds = seconds.saturating_add(1);
    }
    FetchError::Stall {
        url: url.to_string(),
        seconds,
        attempts,
    }
}

/// A response body as a stream of chunks, with the stall timeout, the size cap, the
/// byte counter and cancellation applied. Ends after its first error.
pub struct BodyStream {
    url: String,
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    stall: Pin<Box<tokio::time::Sleep>>,
    stall_timeout: Duration,
    cancel: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    max_size: u64,
    received: u64,
    content_length: Option<u64>,
    attempts: u32,
    counters: Arc<Counters>,
    slot: Option<Slot>,
    done: bool,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("url", &self.url)
            .field("received", &self.received)
            .field("content_length", &self.content_length)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// The body of `response` (from `url`, fetched in `attempts` attempts), capped at
    /// `max_size` bytes, with the stall timeout and cancellation of `options`; it holds
    /// the request's `slot` until it ends.
    pub(super) fn new(
        response: reqwest::Response,
        url: &Url,
        max_size: u64,
        attempts: u32,
        options: &SourceOptions,
        counters: Arc<Counters>,
        slot: Slot,
    ) -> BodyStream {
        let stall = options.stall_timeout;
        BodyStream {
            url: url.to_string(),
            content_length: response.content_length(),
            inner: Box::pin(response.bytes_stream()),
            stall: Box::pin(tokio::time::sleep(stall)),
            stall_timeout: stall,
            cancel: options
                .cancel
                .clone()
                .map(|t| Box::pin(t.cancelled_owned())),
            max_size,
            received: 0,
            attempts,
            counters,
            slot: Some(slot),
            done: false,
        }
    }

    /// The whole body, buffered: the buffer grows towards the cap and never past it,
    /// and a lying or missing `Content-Length` cannot make it reserve the whole cap up
    /// front. The errors are the stream's, and [`FetchError::TooLarge`] when the buffer
    /// cannot grow.
    pub(super) async fn read_all(mut self) -> Result<Vec<u8>, FetchError> {
        let max_size = self.max_size;
        let first = self.content_length.unwrap_or(INITIAL_RESERVE).min(max_size);
        let mut body = Vec::new();
        body.try_reserve_exact(usize::try_from(first).unwrap_or(0))
            .map_err(|_| self.too_large())?;
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            let needed = body.len().saturating_add(chunk.len());
            if needed > body.capacity() {
                let target = needed
                    .max(body.capacity().saturating_mul(2))
                    .min(usize::try_from(max_size).unwrap_or(usize::MAX));
                body.try_reserve_exact(target.saturating_sub(body.len()))
                    .map_err(|_| self.too_large())?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self) -> FetchError {
        FetchError::TooLarge {
            url: self.url.clone(),
            limit: self.max_size,
        }
    }

    /// The URL this body comes from.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `Content-Length` the server declared (already checked against the cap), if
    /// any. Untrusted: the stream may still end early (an error) but never yields more.
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// An [`AsyncRead`] over the body. Errors come out as `std::io::Error` of kind
    /// `Other` wrapping the [`FetchError`] (get it back with `get_ref()` and
    /// `downcast_ref`).
    #[must_use]
    pub fn into_reader(self) -> BodyReader {
        BodyReader {
            stream: self,
            chunk: Bytes::new(),
        }
    }

    /// Ends the stream, giving the slot back with `outcome`.
    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        if let Some(slot) = self.slot.take() {
            slot.finish(outcome);
        }
        self.cancel = None;
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, FetchError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(cancel) = this.cancel.as_mut()
            && cancel.as_mut().poll(cx).is_ready()
        {
            this.finish(Outcome::Abandoned);
            return Poll::Ready(Some(Err(FetchError::Cancelled)));
        }
        loop {
            return match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    this.received = this.received.saturating_add(len);
                    this.counters
                        .bytes_received
                        .fetch_add(len, Ordering::Relaxed);
                    if this.received > this.max_size {
                        this.finish(Outcome::Done(this.received));
                        return Poll::Ready(Some(Err(this.too_large())));
                    }
                    let deadline = tokio::time::Instant::now() + this.stall_timeout;
                    this.stall.as_mut().reset(deadline);
                    if chunk.is_empty() {
                        continue;
                    }
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish(Outcome::Failed);
                    Poll::Ready(Some(Err(FetchError::Connect {
                        url: this.url.clone(),
                        attempts: this.attempts,
                        source: Box::new(e.without_url()),
                    })))
                }
                Poll::Ready(None) => {
                    this.finish(Outcome::Done(this.received));
                    Poll::Ready(None)
                }
                Poll::Pending => {
                    if this.stall.as_mut().poll(cx).is_ready() {
                        this.finish(Outcome::Failed);
                        let e = stall_error(&this.url, this.stall_timeout, this.attempts);
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Pending
                }
            };
        }
    }
}

/// [`AsyncRead`] adapter over a [`BodyStream`] (see [`BodyStream::into_reader`]).
#[derive(Debug)]
pub struct BodyReader {
    stream: BodyStream,
    chunk: Bytes,
}

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match Pin::new(&mut this.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.chunk = chunk,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.remaining().min(this.chunk.len());
        let part = this.chunk.split_to(n);
        buf.put_slice(&part);
        Poll::Ready(Ok(()))
    }
}
