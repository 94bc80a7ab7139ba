//! The fetch scheduler across a delaying link: requests in flight and back-off.
