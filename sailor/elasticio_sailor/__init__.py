"""elasticio-sailor-py: runs elastic.io / OIH components written in Python."""
