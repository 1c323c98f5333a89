from sinks.main import main

main()
