"""Data sets and image files: the AASCE layout, trimap PNGs, colour masks, DICOM, phantoms."""
