//! `minitorrent`: the peer. Everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    minitorrent::cli::main()
}
