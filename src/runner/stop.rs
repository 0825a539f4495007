//! Why a run stopped: the first cause wins, and setting it cancels every wait of the run.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::shutdown::Signal;

/// The reason the load phase ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StopCause {
    /// Every scheduled scenario finished.
    Completed,
    /// Scenarios were still waiting at the deadline.
    Deadline,
    /// Nothing succeeded and nothing was fetched for the stall timeout; the text says since when.
    Stall(String),
    /// A configuration or infrastructure error; the text names the cause.
    Fatal(String),
    /// The dashboard mock stopped answering; the text says for how long and its last error.
    DashboardSilent(String),
    /// The gateway stopped answering the watcher's probe; the text says since when.
    Unresponsive(String),
    /// The kit fell behind its own schedule; the text gives the evidence.
    Saturated(String),
    /// Ctrl-C or SIGTERM.
    Signal(Signal),
}

/// The run's stop switch.
#[derive(Debug, Default)]
pub struct StopSignal {
    cause: Mutex<Option<StopCause>>,
    cancel: CancellationToken,
}

impl StopSignal {
    /// A switch whose token is `cancel`.
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            cause: Mutex::new(None),
            cancel,
        }
    }

    /// Records `cause` unless one is already recorded, and cancels the run.
    pub fn stop(&self, cause: StopCause) {
        if let Ok(mut slot) = self.cause.lock()
            && slot.is_none()
        {
            *slot = Some(cause);
        }
        self.cancel.cancel();
    }

    /// The recorded cause, if any.
    pub fn cause(&self) -> Option<StopCause> {
        self.cause.lock().ok().and_then(|c| c.clone())
    }

    /// The token cancelled when the run stops.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cause_wins_and_cancels() {
        let s = StopSignal::new(CancellationToken::new());
        s.stop(StopCause::Fatal("secret".into()));
        s.stop(StopCause::Deadline);
        assert_eq!(s.cause(), Some(StopCause::Fatal("secret".into())));
        assert!(s.token().is_cancelled());
    }
}
