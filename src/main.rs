fn main() -> std::process::ExitCode {
    stand::cli::main()
}
