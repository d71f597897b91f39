"""CsvExampleGen: component.py (the factory), settings.py (what it tells the executor),
executor.py, blocks.py (parsing and encoding), input_files.py (opening files, headers)."""
