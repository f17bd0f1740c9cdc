//! Pure HTTP helpers for the bytes the gateway serves itself: byte ranges, conditional
//! requests (validators and dates), and the content headers of archives and logs.

pub mod conditional;
pub mod range;
