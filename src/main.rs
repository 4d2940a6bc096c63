fn main() -> std::process::ExitCode {
    copcca_sms::cli::main()
}
