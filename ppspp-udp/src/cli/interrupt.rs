//! Ctrl-C (SIGINT, and SIGTERM) handling for the long-running subcommands.

use std::sync::{Mutex, OnceLock};

use crate::driver::StopHandle;

static TARGET: OnceLock<Mutex<Option<StopHandle>>> = OnceLock::new();

/// Makes Ctrl-C stop `handle`'s driver (the program then closes its channels cleanly). A
/// second Ctrl-C exits at once with code 130. Later calls retarget the handler.
pub fn stop_on_ctrl_c(handle: StopHandle) {
    let slot = TARGET.get_or_init(|| {
        // The handler is installed once per process; it reads the current target.
        let _ = ctrlc::set_handler(|| {
            let target = TARGET
                .get()
                .and_then(|m| m.lock().ok().and_then(|g| g.clone()));
            match target {
                Some(h) if !h.is_stopped() => h.stop(),
                _ => std::process::exit(130),
            }
        });
        Mutex::new(None)
    });
    if let Ok(mut g) = slot.lock() {
        *g = Some(handle);
    }
}
