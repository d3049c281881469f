"""The napari shell: readers, writer, sample data and widgets (the only part importing napari/Qt)."""
