from pvq.cli import main

main()
