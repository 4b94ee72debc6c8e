"""`lookout validate`: every check of the test suite that needs no running stack."""
