use clap::Parser;

fn main() {
    let cli = nixstack::cli::Cli::parse();
    std::process::exit(nixstack::cli::run(cli));
}
