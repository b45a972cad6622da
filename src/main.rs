fn main() -> std::process::ExitCode {
    linkledger::cli::main()
}
