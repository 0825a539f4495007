//! Thin entry point: parse the command line, run, map errors to exit code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    match reload_repro::cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
