from skinscreen.cli.main import main

if __name__ == "__main__":
    main()
