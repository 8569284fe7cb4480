# Writes OUTPUT: a C++ source defining `const std::string_view <SYMBOL>` with the bytes of INPUT
# (a text file: the OpenAPI document), so the binary and the image serve it without the repo.
#   cmake -DINPUT=… -DOUTPUT=… -DSYMBOL=… -P embed_text.cmake
file(READ "${INPUT}" content)
string(FIND "${content}" ")al_embedded\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )al_embedded\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace al::embedded {\n"
  "extern const std::string_view ${SYMBOL};\n"
  "const std::string_view ${SYMBOL} = R\"al_embedded(${content})al_embedded\";\n"
  "}  // namespace al::embedded\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
