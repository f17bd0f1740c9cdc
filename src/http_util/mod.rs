//! Pure HTTP helpers for the bytes the gateway serves itself: byte ranges, conditional
//! requests (validators and dates), and the content headers of archives and logs; and
//! [`window`], the body adapter that cuts a range out of a streamed whole.

pub mod body;
pub mod conditional;
pub mod range;
pub mod security;
pub mod window;
