//! The CLI's error: what went wrong and what to do next, printed as one line.

use std::fmt;

/// A failed command: a message and a hint for the next step.
#[derive(Debug)]
pub struct CliError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl CliError {
    /// An error with a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.trim_end_matches('.');
        if self.hint.is_empty() {
            write!(f, "{message}")
        } else {
            write!(f, "{message}; {}", self.hint)
        }
    }
}

/// Shorthand for command results.
pub type CliResult<T> = Result<T, CliError>;

/// Wraps an I/O error with the path it concerns.
pub fn io_error(action: &str, path: &std::path::Path, e: std::io::Error) -> CliError {
    CliError::new(
        format!("cannot {action} {}: {e}", path.display()),
        "check the path and its permissions",
    )
}
