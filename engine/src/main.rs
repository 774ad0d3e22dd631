//! The `archsim` binary: the command line with the built-in components.

fn main() -> std::process::ExitCode {
    archsim::cli::main()
}
