//! Wire clients of the providers. Each speaks the real protocol (paths, auth, bodies, errors,
//! signatures); tests and the demo point them at the loopback fakes in `crate::fakes`.

pub mod twilio;
