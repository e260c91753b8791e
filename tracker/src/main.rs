fn main() {
    eprintln!("minitorrent-tracker: not built yet");
    std::process::exit(2);
}
