"""`python -m workers`: one worker process."""
from workers.worker import main

if __name__ == "__main__":
    main()
