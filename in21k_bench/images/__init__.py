"""Reading images: class-folder scans, the torch dataset, and the image-source readers."""
