"""A small food-pantry web app in Flask that uses only ngo-kit's inventory module."""
