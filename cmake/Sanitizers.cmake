# TP_SANITIZE: "" (off), "address,undefined" or "thread". Applied globally so
# that every library and test links the same runtime.
set(TP_SANITIZE "" CACHE STRING "Sanitizers to enable (address,undefined | thread)")
if(TP_SANITIZE)
  add_compile_options(-fsanitize=${TP_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${TP_SANITIZE})
endif()
