//! The portal's pages, thin views over [`crate::app::Ctx`]: the shell (landmarks, branding,
//! status region), intake, the sender card and sign-in, progress, the message and its
//! composer (Reply, Reply all, Forward), error pages.
//! Every decision is in the plain modules; every action calls a function in [`crate::app`].

mod compose;
mod intake;
mod message;
mod pages;
mod shell;
mod signin;

pub use message::MessagePage;
pub use shell::Shell;
