from ratify.cli import main

main()
