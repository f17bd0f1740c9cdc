//! What a request is once it is named: its route ([`route`]), its caller's credentials
//! ([`credentials`]), and what dispatch learnt about it ([`context`]). Plain data and pure
//! functions, used by every step below dispatch.

pub mod context;
pub mod credentials;
pub mod route;
