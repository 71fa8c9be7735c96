"""Data files shipped with Gradscape (a package so setuptools includes the .npz).

digits_8x8.npz: the classic 8x8 handwritten digits (1,797 images, 10 classes), the test
set of the UCI ML "Optical Recognition of Handwritten Digits" data set by E. Alpaydin and
C. Kaynak (1998), licensed CC BY 4.0. Copied from the digits.csv.gz that ships with
scikit-learn. Arrays: ``images`` uint8 (1797, 8, 8) with values 0..16, ``labels`` uint8.
"""
