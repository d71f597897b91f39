"""CsvExampleGen: component.py (the factory), executor.py, blocks.py, input_files.py."""
